"""Core building blocks: tensors with autograd, activations, layers, losses, convolutions."""
