"""Drives the proxy with the official Anthropic Python SDK and prints what it got as JSON.

Usage: sdk_client.py BASE_URL
The Rust test that runs this asserts on the printed JSON and on what the mock received.
"""

import json
import sys

import anthropic


def main() -> None:
    base_url = sys.argv[1]
    client = anthropic.Anthropic(base_url=base_url, api_key="sk-ant-test", max_retries=0)
    out = {}

    message = client.messages.create(
        model="claude-sonnet-5",
        max_tokens=1024,
        messages=[{"role": "user", "content": "say hi"}],
    )
    out["plain"] = {
        "text": "".join(b.text for b in message.content if b.type == "text"),
        "stop_reason": message.stop_reason,
        "usage": {"input": message.usage.input_tokens, "output": message.usage.output_tokens},
    }

    events = []
    with client.messages.stream(
        model="claude-sonnet-5",
        max_tokens=1024,
        messages=[{"role": "user", "content": "say hi"}],
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        for event in stream:
            events.append(event.type)
        final = stream.get_final_message()
    out["stream"] = {
        "text": "".join(b.text for b in final.content if b.type == "text"),
        "thinking_signature": next(
            (b.signature for b in final.content if b.type == "thinking"), None
        ),
        "stop_reason": final.stop_reason,
        "events": events,
    }

    counted = client.messages.count_tokens(
        model="claude-sonnet-5",
        messages=[{"role": "user", "content": "count me"}],
    )
    out["count_tokens"] = counted.input_tokens

    try:
        client.messages.create(
            model="claude-sonnet-5",
            max_tokens=10,
            messages=[{"role": "user", "content": "rate limit me"}],
        )
        out["rate_limited"] = None
    except anthropic.RateLimitError as error:
        out["rate_limited"] = {"status": error.status_code, "type": error.body["error"]["type"]}

    print(json.dumps(out))


if __name__ == "__main__":
    main()
