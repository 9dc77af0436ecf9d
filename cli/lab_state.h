/*
 * lab_state: the state file of a lab, LAB_STATE_DIR/NAME.state (JSON).
 *
 * It holds the whole topology (struct lab) and, per node and workload,
 * whether `lab up` created its namespace, so `lab down` removes exactly what
 * was made and `lab exec` and `lab status` need no inventory. `lab up`
 * claims the name by creating the file exclusively before it makes anything,
 * then rewrites it (write to a temporary file, rename) after each namespace
 * it creates: if `up` dies half-way, `down` still knows what to remove.
 *
 * Functions return 0 or -errno; a damaged file is -EINVAL with a reason.
 */
#ifndef MOAT_LAB_STATE_H
#define MOAT_LAB_STATE_H

#include "lab_plan.h"

#include <jansson.h>

#define LAB_STATE_DIR "/run/moat/lab"

/* The state file's path for lab `name` (a valid lab name) into buf. */
void lab_state_path(const char *name, char *buf, size_t n);

/*
 * The lab as a JSON object (caller decrefs; NULL on OOM):
 * {"lab", "underlay": {"netns", "bridge", "subnet", "subnet6"?, "created"},
 * "nodes": [{"name", "cluster"?, "netns", "bridge", "address", "subnet",
 * "address6"?, "subnet6"?, "underlay": {"interface", "address", "address6"?,
 * "port"}, "created"}], "workloads": [{"cluster", "namespace", "name",
 * "node", "netns", "interface", "ips", "created"}]}. The IPv6 members are
 * there when the lab has IPv6 (the node's, when it has a /64). A lab
 * without an underlay (a state file from before labs had one) has neither
 * "underlay" member, and one from before the lab had IPv6 no IPv6 member;
 * lab_from_json takes such files too. Without `with_created` the "created"
 * members are left out.
 */
json_t *lab_to_json(const struct lab *lab, bool with_created);
/* The inverse; -EINVAL with a reason in `why` when the object is not one. */
int lab_from_json(const json_t *j, struct lab **out, char *why, size_t n);

/* Creates the state folder and claims `name` with an empty file: 0, -EEXIST, -errno. */
int lab_state_claim(const char *name);
/* Replaces the state file with the lab's current state (atomically). */
int lab_state_save(const struct lab *lab);
/*
 * Reads lab `name`'s state: 0 with *out (lab_free), -ENOENT (no such lab),
 * -ENODATA (claimed but nothing recorded yet), -EINVAL (damaged; `why`),
 * -ENOMEM or another -errno.
 */
int lab_state_load(const char *name, struct lab **out, char *why, size_t n);
/* Removes the state file; 0 also when it is not there. */
int lab_state_remove(const char *name);

#endif
