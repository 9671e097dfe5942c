"""Unit tests of bootstrap.local: the process supervisor and local servers, with tiny children."""
