/* owntracks.c - not written yet */
