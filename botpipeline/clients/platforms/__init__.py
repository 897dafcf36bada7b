"""Platform collectors: one interface (base.py), one adapter per platform."""
