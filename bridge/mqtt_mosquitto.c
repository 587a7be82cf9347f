/* mqtt_mosquitto.c - not written yet */
