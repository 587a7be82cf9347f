# Empty dependencies file for bench-pub.
# This may be replaced when dependencies are built.
