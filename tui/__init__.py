"""batchdash terminal front ends: the Textual dashboard and the command line."""
