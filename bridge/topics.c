/* topics.c - not written yet */
