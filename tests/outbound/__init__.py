"""Tests of outbound calls: the API client, `gateway dial` and campaigns."""
