# Empty dependencies file for t2m_http.
# This may be replaced when dependencies are built.
