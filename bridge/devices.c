/* devices.c - not written yet */
