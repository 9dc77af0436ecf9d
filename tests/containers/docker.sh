#!/bin/sh
# Docker Engine (Debian's docker.io): see engine.sh, which runs dockerd in a
# network namespace of its own. Usage (root, repo root): tests/containers/docker.sh BUILD
ENGINE=docker exec sh tests/containers/engine.sh "$@"
