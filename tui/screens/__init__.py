"""The dashboard's screens: help, confirm, filter input and batch detail."""
