#!/bin/sh
# Podman: see engine.sh. Usage (root, repo root): tests/containers/podman.sh BUILD
ENGINE=podman exec sh tests/containers/engine.sh "$@"
