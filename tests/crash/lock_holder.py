"""Takes a lock through a server, prints its token, then sleeps until killed."""

import sys
import time

from agentos.sdk import Client

if __name__ == "__main__":
    url, resource, owner, ttl = sys.argv[1:5]
    with Client(url) as client:
        got = client.acquire_lock(resource, owner, ttl_s=float(ttl))
    print(got.token, flush=True)
    time.sleep(3600)
