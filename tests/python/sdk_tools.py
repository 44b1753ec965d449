"""A tool round trip with the official Anthropic SDK: stream a request that makes the model
call a tool, send the tool result back, stream the answer. Prints what it got as JSON.

Usage: sdk_tools.py BASE_URL
"""

import json
import sys

import anthropic

TOOLS = [
    {
        "name": "Bash",
        "description": "Run a shell command",
        "input_schema": {
            "type": "object",
            "properties": {
                "command": {"type": "string"},
                "description": {"type": "string"},
            },
            "required": ["command"],
        },
    }
]


def main() -> None:
    client = anthropic.Anthropic(base_url=sys.argv[1], api_key="sk-ant-client-key", max_retries=0)
    out = {}
    messages = [{"role": "user", "content": "please run the marker command"}]
    with client.messages.stream(
        model="claude-sonnet-5", max_tokens=1024, messages=messages, tools=TOOLS
    ) as stream:
        first = stream.get_final_message()
    tool_use = next(b for b in first.content if b.type == "tool_use")
    out["first"] = {
        "stop_reason": first.stop_reason,
        "tool_name": tool_use.name,
        "tool_input": tool_use.input,
        "tool_id": tool_use.id,
    }
    messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "pai-local-ok"}],
        }
    )
    with client.messages.stream(
        model="claude-sonnet-5", max_tokens=1024, messages=messages, tools=TOOLS
    ) as stream:
        text = "".join(stream.text_stream)
        second = stream.get_final_message()
    out["second"] = {"text": text, "stop_reason": second.stop_reason}

    plain = client.messages.create(
        model="claude-sonnet-5", max_tokens=100, messages=[{"role": "user", "content": "hello"}]
    )
    out["plain"] = {"text": plain.content[0].text, "stop_reason": plain.stop_reason}
    out["count"] = client.messages.count_tokens(
        model="claude-sonnet-5", messages=[{"role": "user", "content": "count these words please"}]
    ).input_tokens
    print(json.dumps(out))


if __name__ == "__main__":
    main()
