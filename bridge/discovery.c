/* discovery.c - not written yet */
