/* jsonpatch: JSON merge patch (RFC 7396), see jsonpatch.h. */
#include "jsonpatch.h"

#include <errno.h>

int json_merge_patch(json_t *target, const json_t *patch)
{
    const char *key;
    json_t *pv;
    json_object_foreach((json_t *)patch, key, pv)
    {
        json_t *tv = json_object_get(target, key);
        int rc = 0;
        if (json_is_null(pv)) {
            if (tv)
                rc = json_object_del(target, key);
        } else if (json_is_object(pv)) {
            if (!json_is_object(tv)) {
                tv = json_object();
                rc = json_object_set_new(target, key, tv);
            }
            if (rc == 0)
                rc = json_merge_patch(tv, pv);
        } else {
            rc = json_object_set_new(target, key, json_deep_copy(pv));
        }
        if (rc < 0)
            return -ENOMEM;
    }
    return 0;
}
