"""Storage: the ports (Protocols) domain code uses, and their back ends."""
