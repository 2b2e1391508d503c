"""A minimal Lambda custom-runtime loop for the Python baseline of `make bench`.

It runs under the same Runtime API emulator as the Rust binaries. It is lighter than the
managed Python runtime (awslambdaric), so if anything it flatters Python: what is measured is
the interpreter, `import boto3`, the clients, and the handler.
"""

import json
import os
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


def post(path, body):
    req = urllib.request.Request(API + path, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req) as r:
        r.read()


try:
    import handler  # init: imports boto3 and creates the clients, like the Rust main()
except Exception as e:  # report it the way a runtime does, then stop
    post("/init/error", json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)}).encode())
    raise

while True:
    with urllib.request.urlopen(API + "/invocation/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    try:
        body, path = json.dumps(handler.handler(event, None)).encode(), "/response"
    except Exception as e:
        body = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)}).encode()
        path = "/error"
    post("/invocation/" + request_id + path, body)
