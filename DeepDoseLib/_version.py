"""Single source of the DeepDose version string."""
__version__ = "0.1.0"
