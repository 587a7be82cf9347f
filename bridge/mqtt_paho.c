/* mqtt_paho.c - not written yet */
