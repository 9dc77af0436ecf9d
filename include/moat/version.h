/*
 * The version of Moat's programs (moat, moatd, moat-server, moat-traffic),
 * which each prints with --version; moatd reports it as its agent version,
 * which moat-server compares with --min-agent-version. The man pages
 * (mk/man.py) take it from here too.
 */
#ifndef MOAT_VERSION_H
#define MOAT_VERSION_H

#define MOAT_VERSION "0.5.0"

#endif
