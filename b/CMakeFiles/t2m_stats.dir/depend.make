# Empty dependencies file for t2m_stats.
# This may be replaced when dependencies are built.
