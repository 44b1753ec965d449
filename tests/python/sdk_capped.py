"""Asks for Opus through the proxy with the official Anthropic SDK while Anthropic (a mock)
refuses Opus — its weekly cap is used up. Prints what came back as JSON; the Rust test
asserts that every call succeeded (on Sonnet) and none raised.

Usage: sdk_capped.py BASE_URL
"""

import json
import sys

import anthropic


def main() -> None:
    client = anthropic.Anthropic(base_url=sys.argv[1], api_key="sk-ant-test", max_retries=0)
    out = {"errors": [], "answers": []}
    for n in range(3):
        try:
            message = client.messages.create(
                model="claude-opus-4-8",
                max_tokens=256,
                messages=[{"role": "user", "content": f"design the architecture, part {n}"}],
            )
            out["answers"].append({"model": message.model, "stop_reason": message.stop_reason})
            with client.messages.stream(
                model="claude-opus-4-8",
                max_tokens=256,
                messages=[{"role": "user", "content": f"design the security model, part {n}"}],
            ) as stream:
                final = stream.get_final_message()
            out["answers"].append({"model": final.model, "stop_reason": final.stop_reason})
        except anthropic.APIError as error:
            out["errors"].append(str(error))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
