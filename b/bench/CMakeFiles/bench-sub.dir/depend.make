# Empty dependencies file for bench-sub.
# This may be replaced when dependencies are built.
