"""Remote batch back ends behind one small interface."""
