"""Coordinated behaviour: identical-behaviour bins, co-action networks, significance, groups."""
