"""Chapter 10: CharTokenizer and the byte-level BPETokenizer."""
import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.text import (
    GPT2_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    TokenizerFileError,
    merge_pair,
    pair_counts,
    split_text,
)

CORPUS = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
          "All:\nSpeak, speak.\n\n\tcafé  naïve — 😀 e\u0301\r\n") * 4

ADVERSARIAL = ["", "\n", "\n\n\n", "   ", "a  b   c", "\t\tx\t", "\r\n", "\x00\x7f",
               "😀", "👩\u200d👩\u200d👧", "e\u0301", "\u0301", "日本語のテキスト", "\ufffd",
               "ﬁ", "Ω≈ç√", "a" * 100, " " * 50 + "\n"]


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer().train(CORPUS, 300)


@pytest.fixture(scope="module")
def bpe_split():
    return BPETokenizer().train(CORPUS, 300, pattern=GPT2_SPLIT_PATTERN)


# ------------------------------------------------------------------ the stored oracle
ORACLE = Path(__file__).resolve().parent.parent / "fixtures" / "bpe_reference.json"


@functools.cache
def stored_bpe():
    """BPE trained the slow, obvious way (recount every pair of the text before every merge;
    ties to the pair whose first occurrence comes first) and encoding by applying merge 0
    everywhere, then merge 1, ...: the cases and answers of tools/make_oracle_fixtures.py."""
    return json.loads(ORACLE.read_text(encoding="utf-8"))


def training_cases(name):
    """``(text, vocab_size, merges)`` of one family of stored texts."""
    return [(text, size, [tuple(m) for m in merges])
            for text, size, merges in stored_bpe()["training"][name]]


# ------------------------------------------------------------------ the SPEC example
def test_spec_example_encodes_exactly():
    tokenizer = BPETokenizer().train("aaabdaaabac", 259)
    assert tokenizer.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


def test_spec_example_learns_aa_then_the_tie_winner_then_zab():
    tokenizer = BPETokenizer().train("aaabdaaabac", 259)
    # After aa -> 256, the pairs (256, a) and (a, b) both occur twice; (256, a) comes first.
    assert tokenizer.merges == {(97, 97): 256, (256, 97): 257, (257, 98): 258}
    assert tokenizer.vocab[258] == b"aaab"
    assert tokenizer.vocab_size == 259


@pytest.mark.parametrize("text, winner", [("abcdcdab", (97, 98)), ("cdcdabab", (99, 100)),
                                          ("xyab.ab.xy", (120, 121))])
def test_a_tie_goes_to_the_pair_that_occurs_first_in_the_text(text, winner):
    # In each text "ab" and "cd" (or "xy") occur equally often; only the order differs.
    counts = pair_counts(list(text.encode()))
    assert counts[(97, 98)] == counts[winner] == max(counts.values())
    assert list(BPETokenizer().train(text, 257).merges) == [winner]


# ------------------------------------------------------------------ the two steps
def test_pair_counts_counts_overlaps_in_order_of_first_occurrence():
    counts = pair_counts([1, 1, 1, 2, 1, 1])
    assert counts == {(1, 1): 3, (1, 2): 1, (2, 1): 1}
    assert list(counts) == [(1, 1), (1, 2), (2, 1)]


def test_pair_counts_adds_to_the_dict_passed_in():
    counts = pair_counts([5, 6], pair_counts([5, 6, 7]))
    assert counts == {(5, 6): 2, (6, 7): 1}


def test_merge_pair_replaces_left_to_right_without_overlap():
    assert merge_pair([1, 1, 1], (1, 1), 9) == [9, 1]
    assert merge_pair([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert merge_pair([3, 1, 2, 1, 2, 4], (1, 2), 7) == [3, 7, 7, 4]
    assert merge_pair([], (1, 2), 7) == []


# ------------------------------------------------------------------ the oracle
def test_incremental_training_equals_recounting_every_merge():
    # 200 random texts of "ab c\n" (up to 60 characters, 0..25 merges) after the edge cases
    for text, vocab_size, merges in training_cases("ascii"):
        assert list(BPETokenizer().train(text, vocab_size).merges) == merges, (text, vocab_size)


def test_incremental_training_equals_recounting_on_any_unicode():
    # 120 random texts of any code points (up to 40, 0..15 merges) after emoji, combining
    # marks, NUL and other edge cases
    for text, vocab_size, merges in training_cases("unicode"):
        assert list(BPETokenizer().train(text, vocab_size).merges) == merges, (text, vocab_size)


def test_incremental_training_with_a_pattern_equals_recounting():
    # 120 random texts of "ab c'\n1" (up to 60 characters, 0..20 merges) after the edge cases
    assert stored_bpe()["pattern"] == GPT2_SPLIT_PATTERN
    for text, vocab_size, merges in training_cases("pattern"):
        tokenizer = BPETokenizer().train(text, vocab_size, pattern=GPT2_SPLIT_PATTERN)
        assert list(tokenizer.merges) == merges, (text, vocab_size)


def test_encode_equals_applying_the_merges_one_after_the_other():
    # 120 texts of "ab c\n", each with the 0..25 merges learned from another such text
    for merges, text, ids in stored_bpe()["encoding"]:
        assert BPETokenizer([tuple(m) for m in merges]).encode(text) == ids, (text, merges)


# ------------------------------------------------------------------ round trips
@settings(max_examples=200, deadline=None)
@given(st.text())
def test_bpe_round_trips_every_string(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_bpe_with_the_gpt2_pattern_round_trips_every_string(bpe_split, text):
    assert bpe_split.decode(bpe_split.encode(text)) == text


@pytest.mark.parametrize("text", ADVERSARIAL + [CORPUS])
def test_bpe_round_trips_newlines_spaces_tabs_emoji_and_combining_characters(
        bpe, bpe_split, text):
    for tokenizer in (bpe, bpe_split):
        ids = tokenizer.encode(text)
        assert all(isinstance(i, int) and 0 <= i < tokenizer.vocab_size for i in ids)
        assert tokenizer.decode(ids) == text


def test_bpe_compresses_its_training_text(bpe):
    assert len(bpe.encode(CORPUS)) < len(CORPUS.encode("utf-8")) / 2


def test_every_token_of_a_pattern_trained_bpe_stays_inside_one_chunk(bpe_split):
    ascii_tokens = [t.decode() for t in bpe_split.vocab[256:] if t.isascii()]
    assert ascii_tokens
    for token in ascii_tokens:
        assert split_text(token, GPT2_SPLIT_PATTERN) == [token]


def test_without_a_pattern_merges_cross_word_boundaries(bpe):
    assert any(t.strip(b" \n\t,.:") != t and t.strip(b" \n\t,.:") for t in bpe.vocab[256:])


@settings(max_examples=100, deadline=None)
@given(st.text(), st.sampled_from([GPT2_SPLIT_PATTERN, r"\d+", r"a|b*", r"(?=x)"]))
def test_split_text_loses_nothing_even_where_the_pattern_does_not_match(text, pattern):
    chunks = split_text(text, pattern)
    assert "".join(chunks) == text and all(chunks)


def test_decoding_part_of_a_character_gives_the_replacement_character(bpe):
    e_acute = list("é".encode())                       # two bytes: 0xC3 0xA9
    assert bpe.decode(e_acute) == "é"
    assert bpe.decode(e_acute[:1]) == "\ufffd"
    assert bpe.decode([e_acute[1], 104, 105]) == "\ufffdhi"


def test_a_lone_surrogate_cannot_be_encoded_and_the_error_says_where(bpe):
    with pytest.raises(ValueError, match=r"'\\ud800' at position 2 is a lone surrogate"):
        bpe.encode("ab\ud800")


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1))
def test_char_tokenizer_round_trips_its_corpus(text):
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    assert len(ids) == len(text) and tokenizer.decode(ids) == text
    assert tokenizer.vocab_size == len(set(text))


def test_char_tokenizer_ids_follow_sorted_characters():
    tokenizer = CharTokenizer.from_text("hello")
    assert tokenizer.chars == ["e", "h", "l", "o"]
    assert tokenizer.encode("hello") == [1, 0, 2, 2, 3]
    assert tokenizer.decode([3, 2, 0]) == "ole"


def test_char_tokenizer_names_an_unknown_character_and_its_position():
    tokenizer = CharTokenizer.from_text("abc ")
    with pytest.raises(ValueError, match=r"character '😀' at position 3 is not in the "
                                         r"tokenizer's 4 characters"):
        tokenizer.encode("ab 😀 c")
    with pytest.raises(ValueError, match=r"character '\\n' at position 1"):
        tokenizer.encode("a\nb")


@pytest.mark.parametrize("make", [lambda: CharTokenizer.from_text("abc"),
                                  lambda: BPETokenizer().train("abab", 257)],
                         ids=["char", "bpe"])
def test_decode_names_an_id_outside_the_vocabulary(make):
    tokenizer = make()
    n = tokenizer.vocab_size
    with pytest.raises(ValueError, match=rf"id {n} at position 1 is outside the vocabulary "
                                         rf"\(ids 0..{n - 1}\)"):
        tokenizer.decode([0, tokenizer.vocab_size])
    with pytest.raises(ValueError, match="id -1 at position 0"):
        tokenizer.decode([-1])
    with pytest.raises(TypeError, match=r"id at position 0 is 1.0 \(float\), not an int"):
        tokenizer.decode([1.0])


@pytest.mark.parametrize("chars, message", [(["a", "bc"], r"chars\[1\] = 'bc' is not a single"),
                                            (["a", "b", "a"], r"repeated: \['a'\]"),
                                            ([], "at least one character")])
def test_char_tokenizer_rejects_a_bad_alphabet(chars, message):
    with pytest.raises(ValueError, match=message):
        CharTokenizer(chars)


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("vocab_size, error, message", [
    (255, ValueError, "vocab_size must be at least 256 .* got 255"),
    (0, ValueError, "at least 256"),
    (300.0, TypeError, r"vocab_size must be an int, got 300.0 \(float\)"),
    ("512", TypeError, r"got '512' \(str\)"),
    (True, TypeError, r"got True \(bool\)"),
])
def test_train_rejects_a_bad_vocab_size(vocab_size, error, message):
    with pytest.raises(error, match=message):
        BPETokenizer().train("some text", vocab_size)


def test_vocab_size_256_learns_no_merge_and_encodes_bytes():
    tokenizer = BPETokenizer().train("aaaa", 256)
    assert tokenizer.merges == {} and tokenizer.encode("aé") == [97, 0xC3, 0xA9]


def test_training_stops_early_when_no_pair_is_left():
    tokenizer = BPETokenizer().train("abab", 10_000)
    assert list(tokenizer.merges) == [(97, 98), (256, 256)]
    assert tokenizer.vocab_size == 258 and tokenizer.encode("abab") == [257]


def test_training_again_replaces_the_merges():
    tokenizer = BPETokenizer().train("xyxyxy", 260)
    tokenizer.train("aaabdaaabac", 259)
    assert tokenizer.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


@pytest.mark.parametrize("call", [lambda t: t.encode(b"bytes"), lambda t: t.train(["a"], 300),
                                  lambda t: t.decode("abc")])
def test_bpe_rejects_non_strings(call):
    with pytest.raises(TypeError):
        call(BPETokenizer())


@pytest.mark.parametrize("merges, message", [([(97, 256)], r"merge 0 \(97, 256\) uses an id "
                                                           r"outside 0..255"),
                                             ([(97, 98), (97, 98)], "repeats merge 0"),
                                             ([(97,)], "must be a pair of int ids")])
def test_bpe_from_merges_rejects_inconsistent_merges(merges, message):
    with pytest.raises(ValueError, match=message):
        BPETokenizer(merges)


def test_a_prefix_of_the_merges_is_the_tokenizer_trained_to_that_size():
    big = BPETokenizer().train(CORPUS, 320)
    small = BPETokenizer(list(big.merges)[:30])
    assert small.merges == BPETokenizer().train(CORPUS, 286).merges


def test_the_regex_package_is_imported_only_when_a_pattern_is_used():
    code = ("import sys, tinytorch as tt\n"
            "tt.BPETokenizer().train('abc abc', 258)\n"
            "print('regex' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


# ------------------------------------------------------------------ save / load
@pytest.mark.parametrize("name", ["char", "bpe", "bpe_split"])
def test_save_then_load_gives_identical_encodings(name, bpe, bpe_split, tmp_path):
    tokenizer = {"char": CharTokenizer.from_text(CORPUS), "bpe": bpe, "bpe_split": bpe_split}[name]
    path = tmp_path / "tokenizer.json"
    tokenizer.save(path)
    loaded = type(tokenizer).load(path)
    assert loaded.vocab_size == tokenizer.vocab_size
    for text in [CORPUS, "café  naïve\n", "e\u0301"]:
        assert loaded.encode(text) == tokenizer.encode(text)
    assert loaded.decode(tokenizer.encode(CORPUS)) == CORPUS


def test_a_saved_tokenizer_is_plain_json(bpe_split, tmp_path):
    path = tmp_path / "bpe.json"
    bpe_split.save(path)
    config = json.loads(path.read_text(encoding="utf-8"))
    assert config["type"] == "BPETokenizer" and config["version"] == 1
    assert config["pattern"] == GPT2_SPLIT_PATTERN
    assert config["merges"] == [list(pair) for pair in bpe_split.merges]


@pytest.mark.parametrize("cls, content, message", [
    (BPETokenizer, "not json {", "not a tokenizer file \\(invalid JSON"),
    (BPETokenizer, "[1, 2]", "expected a JSON object, got list"),
    (BPETokenizer, '{"type": "CharTokenizer", "version": 1, "chars": ["a"]}',
     "holds type 'CharTokenizer', not 'BPETokenizer'"),
    (BPETokenizer, '{"type": "BPETokenizer", "version": 7, "pattern": null, "merges": []}',
     "format version 7 is not supported"),
    (BPETokenizer, '{"type": "BPETokenizer", "version": 1, "pattern": null}',
     "missing field 'merges'"),
    (BPETokenizer, '{"type": "BPETokenizer", "version": 1, "pattern": 3, "merges": []}',
     "field 'pattern' must be a string or null, got int"),
    (BPETokenizer, '{"type": "BPETokenizer", "version": 1, "pattern": null, '
                   '"merges": [[97, 98], [300, 1]]}', r"merge 1 \(300, 1\) uses an id outside"),
    (BPETokenizer, '{"type": "BPETokenizer", "version": 1, "pattern": null, '
                   '"merges": [[97, "b"]]}', "merge 0 must be a pair of int ids"),
    (CharTokenizer, '{"type": "CharTokenizer", "version": 1, "chars": "abc"}',
     "field 'chars' must be a list of characters, got str"),
    (CharTokenizer, '{"type": "CharTokenizer", "version": 1, "chars": ["a", "ab"]}',
     r"chars\[1\] = 'ab' is not a single character"),
])
def test_loading_a_malformed_file_names_the_file_and_the_problem(cls, content, message,
                                                                 tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=message) as info:
        cls.load(path)
    assert str(path) in str(info.value)
