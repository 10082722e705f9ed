"""Chapter 05: datasets and the DataLoader that batches and shuffles them."""
from .dataset import Dataset, TensorDataset
from .dataloader import DataLoader

__all__ = ["Dataset", "TensorDataset", "DataLoader"]
