"""Stored responses: which provider holds each response the Responses API stored, so
that later calls on it (`GET`, `DELETE`, `cancel`) reach the same provider."""
