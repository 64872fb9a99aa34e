//! xl.cfg-style domain configuration files.
