/* mqtt.c - not written yet */
