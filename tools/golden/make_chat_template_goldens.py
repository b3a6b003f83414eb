#!/usr/bin/env python3
"""Writes the golden renders that tests/io/jinja_*_test.cpp and hf_chat_template_test.cpp compare
the C++ Jinja interpreter against, byte for byte.

Offline, one-off: run it by hand when the cases change and commit its output. It needs only
jinja2 (Debian's python3-jinja2), configured as transformers' _compile_jinja_template does:
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True) with the loopcontrols
extension, tojson replaced by json.dumps(ensure_ascii=False, indent, separators, sort_keys), and
the globals raise_exception and strftime_now (frozen at 2024-07-26 12:00 for reproducibility).
Templates are rendered with the variables apply_chat_template passes: messages, tools,
documents, add_generation_prompt and the special tokens.

Usage: python3 tools/golden/make_chat_template_goldens.py  (from the repository root)
Reads  tests/data/chat_templates/<model>.jinja and <model>.tokens.json
Writes tests/data/chat_templates/goldens.json and snippets.json
"""
import datetime
import json
import os

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

DATA = os.path.join("tests", "data", "chat_templates")
FIXED_NOW = datetime.datetime(2024, 7, 26, 12, 0, 0)
MODELS = ["qwen2_5", "qwen3", "llama3_1", "llama3_2", "gemma3", "mistral_nemo", "smollm2", "phi3"]


class GenerationBlock(jinja2.ext.Extension):
    """{% generation %}...{% endgeneration %} renders its body (transformers' AssistantTracker
    when no tracking is active)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, context):
    try:
        return {"expected": env.from_string(source).render(**context)}
    except jinja2.exceptions.TemplateError as e:
        kind = "raised" if type(e) is jinja2.exceptions.TemplateError else "error"
        return {kind: str(e)}
    except Exception as e:  # Python errors inside the template (TypeError, ...)
        return {"error": f"{type(e).__name__}: {e}"}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}

TOOL_CALL = {"id": "abcdef123", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}

TRICKY = ("  Héllo, 世界 🤖!\n\"quoted\" 'single' {braces} {{ not jinja }} {% nor this %}\n"
          "back\\slash\ttab\u2028sep\x01ctl  \n")

CONVERSATIONS = [
    ("single_user", [{"role": "user", "content": "Hello!"}], {}),
    ("system_user", [{"role": "system", "content": "You are terse."},
                     {"role": "user", "content": "What is 2+2?"}], {}),
    ("multi_turn", [{"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello! How can I help?"},
                    {"role": "user", "content": "Tell me a joke."}], {}),
    ("system_multi_turn", [{"role": "system", "content": "Be kind.\nAlways."},
                           {"role": "user", "content": "One"},
                           {"role": "assistant", "content": "Two"},
                           {"role": "user", "content": "Three"},
                           {"role": "assistant", "content": "Four"}], {}),
    ("tricky_content", [{"role": "system", "content": TRICKY},
                        {"role": "user", "content": TRICKY},
                        {"role": "assistant", "content": TRICKY},
                        {"role": "user", "content": "\n\n  ok \t"}], {}),
    ("empty_system", [{"role": "system", "content": ""},
                      {"role": "user", "content": "Hi"}], {}),
    ("bad_alternation", [{"role": "user", "content": "A"},
                         {"role": "user", "content": "B"}], {}),
    ("assistant_first", [{"role": "assistant", "content": "I speak first."},
                         {"role": "user", "content": "OK"}], {}),
    ("unknown_role", [{"role": "user", "content": "A"},
                      {"role": "narrator", "content": "Meanwhile..."}], {}),
    ("think_in_content", [{"role": "user", "content": "2+2?"},
                          {"role": "assistant",
                           "content": "<think>\nAdd them.\n</think>\n\nIt is 4."},
                          {"role": "user", "content": "3+3?"},
                          {"role": "assistant", "content": "<think>\nAgain.\n</think>\n\n6"}], {}),
    ("reasoning_content", [{"role": "user", "content": "Why?"},
                           {"role": "assistant", "content": "Because.",
                            "reasoning_content": "\nThinking hard.\n"}], {}),
    ("thinking_disabled", [{"role": "user", "content": "Quick answer?"}],
     {"enable_thinking": False}),
    ("tools_offered", [{"role": "system", "content": "Use tools."},
                       {"role": "user", "content": "Weather in Paris?"}],
     {"tools": [WEATHER_TOOL]}),
    ("tool_call_round_trip", [{"role": "user", "content": "Weather in Paris?"},
                              {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]},
                              {"role": "tool", "content": "{\"temp\": 21}",
                               "tool_call_id": "abcdef123"},
                              {"role": "assistant", "content": "It is 21 degrees."}],
     {"tools": [WEATHER_TOOL]}),
    ("tool_call_no_tools", [{"role": "user", "content": "Weather?"},
                            {"role": "assistant", "content": "Checking.", "tool_calls": [TOOL_CALL]},
                            {"role": "tool", "content": "sunny", "tool_call_id": "abcdef123"},
                            {"role": "tool", "content": "warm", "tool_call_id": "abcdef123"}], {}),
    ("two_tool_calls", [{"role": "user", "content": "Weather in Paris and Rome?"},
                        {"role": "assistant", "content": None,
                         "tool_calls": [TOOL_CALL, {"id": "xyz987654", "type": "function",
                                                    "function": {"name": "get_weather",
                                                                 "arguments": "{\"city\": \"Rome\"}"}}]}],
     {"tools": [WEATHER_TOOL]}),
    ("tool_result_mapping", [{"role": "user", "content": "Weather?"},
                             {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]},
                             {"role": "tool", "content": {"temp": 21, "sky": "clear"},
                              "tool_call_id": "abcdef123"}], {}),
    ("content_parts", [{"role": "user", "content": [{"type": "text", "text": " Look: "},
                                                   {"type": "image"},
                                                   {"type": "text", "text": "what is it?"}]}], {}),
    ("llama_date_and_tools_in_system", [{"role": "user", "content": "Hi"}],
     {"tools": [WEATHER_TOOL], "tools_in_user_message": False, "date_string": "01 Jan 2025"}),
]


def chat_goldens(env):
    goldens = []
    for model in MODELS:
        with open(os.path.join(DATA, model + ".jinja"), encoding="utf-8") as f:
            source = f.read()
        with open(os.path.join(DATA, model + ".tokens.json"), encoding="utf-8") as f:
            tokens = json.load(f)
        for name, messages, extra in CONVERSATIONS:
            for add_generation_prompt in (False, True):
                context = dict(tokens)
                context.update(messages=messages, tools=None, documents=None,
                               add_generation_prompt=add_generation_prompt)
                context.update(extra)
                case = {"model": model, "conversation": name,
                        "add_generation_prompt": add_generation_prompt}
                case.update(render(env, source, context))
                goldens.append(case)
    conversations = [{"name": n, "messages": m, "extra": e} for n, m, e in CONVERSATIONS]
    return {"conversations": conversations, "renders": goldens}


def snippet_goldens(env):
    with open(os.path.join(DATA, "snippet_sources.json"), encoding="utf-8") as f:
        snippets = json.load(f)
    out = []
    for snippet in snippets:
        case = {"template": snippet["template"], "context": snippet.get("context", {})}
        case.update(render(env, case["template"], case["context"]))
        out.append(case)
    return out


def main():
    env = make_environment()
    with open(os.path.join(DATA, "goldens.json"), "w", encoding="utf-8") as f:
        json.dump(chat_goldens(env), f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(DATA, "snippets.json"), "w", encoding="utf-8") as f:
        json.dump(snippet_goldens(env), f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
