# Empty dependencies file for telematics-sim.
# This may be replaced when dependencies are built.
