/* bridge.c - not written yet */
