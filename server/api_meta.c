/* api_meta: routes about the server itself — /healthz and /metrics (no token needed). */
#include "server.h"

#include <errno.h>

int api_health(struct req *rq, struct resp *rs)
{
    (void)rq;
    return resp_json(rs, 200, json_pack("{s:s}", "status", "ok"));
}

int api_metrics(struct req *rq, struct resp *rs)
{
    rs->text = metrics_render(&rq->srv->metrics);
    if (!rs->text)
        return -ENOMEM;
    rs->status = 200;
    rs->ctype = "text/plain; version=0.0.4";
    return 0;
}
