"""Starts llama.cpp's server (the prebuilt one in the `xllamacpp` wheel) on 127.0.0.1 with
the small GGUF model at MODEL_PATH, prints `READY <port>`, and serves until stdin closes.

Usage: llama_server.py MODEL_PATH
"""

import socket
import sys

import xllamacpp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    params = xllamacpp.CommonParams()
    params.model.path = sys.argv[1]
    params.hostnames = ["127.0.0.1"]
    port = free_port()
    params.port = port
    params.model_alias = "smollm2"
    params.n_ctx = 4096
    params.n_parallel = 1
    params.cpuparams.n_threads = 2
    server = xllamacpp.Server(params)
    print(f"READY {port}", flush=True)
    sys.stdin.read()
    del server


if __name__ == "__main__":
    main()
