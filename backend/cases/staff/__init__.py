"""The staff workbench: the queue of an area and what staff do with a case."""
