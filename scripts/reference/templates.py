#!/usr/bin/env python3
"""Makes tests/fixtures/templates/jinja2.json: every chat template in
models/llama.cpp/templates/ (scripts/fetch-models.sh) rendered by Jinja2 the
way transformers' `apply_chat_template` renders it (transformers 5.25's
utils/chat_template_utils.py, copied here so that transformers need not be
installed): an ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks,
loop controls and the `{% generation %}` tag, `tojson` as json.dumps without
HTML escaping, `raise_exception`, `strftime_now` (here on a fixed date, the
one chat.rs defaults to), `dict` and `namespace`; messages with their
None-valued keys dropped. For each template and conversation it records the
text, or Jinja2's error. Needs Jinja2 >= 3.1.6 (nothing else); re-running it
gives the same file."""
import datetime, json, os, sys

import jinja2, jinja2.ext, jinja2.nodes, jinja2.utils
from jinja2.sandbox import ImmutableSandboxedEnvironment

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "..", "..")
templates_dir = os.path.join(root, "models", "llama.cpp", "templates")
out_dir = os.path.join(root, "tests", "fixtures", "templates")

DATE = datetime.datetime(2024, 7, 26)  # chat.rs's DEFAULT_DATE, at midnight
BOS, EOS = "<s>", "</s>"

TOOLS = [
    {"type": "function",
     "function": {"name": "get_weather",
                  "description": "Get the current weather in a city.",
                  "parameters": {"type": "object",
                                 "properties": {"city": {"type": "string", "description": "City name, e.g. Paris"},
                                                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                                 "required": ["city"]}}},
    {"type": "function",
     "function": {"name": "add",
                  "description": "Add two numbers.",
                  "parameters": {"type": "object",
                                 "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                                 "required": ["a", "b"]}}},
]

# Key order as chat.rs's Message serializes: role, content, tool_calls, tool_call_id, name.
CONVERSATIONS = {
    "plain": {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello! What's 2 + 2?"},
            {"role": "assistant", "content": "2 + 2 = 4."},
            {"role": "user", "content": "And times 3?"},
        ],
        "tools": None,
        "add_generation_prompt": True,
    },
    "tools": {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": "",
             "tool_calls": [{"id": "call12345", "type": "function",
                             "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}]},
            {"role": "tool", "content": '{"temperature": 22, "condition": "sunny"}',
             "tool_call_id": "call12345", "name": "get_weather"},
            {"role": "assistant", "content": "It is 22 °C and sunny in Paris."},
            {"role": "user", "content": "Thanks! Now add 2 and 3."},
        ],
        "tools": TOOLS,
        "add_generation_prompt": True,
    },
    # The same exchange exactly as OpenAI's API sends it: no content beside
    # tool calls, arguments as a JSON string, no function name on the result.
    "openai_tools": {
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": None,
             "tool_calls": [{"id": "call12345", "type": "function",
                             "function": {"name": "get_weather",
                                          "arguments": '{"city": "Paris", "unit": "celsius"}'}}]},
            {"role": "tool", "content": '{"temperature": 22, "condition": "sunny"}', "tool_call_id": "call12345"},
            {"role": "assistant", "content": "It is 22 °C and sunny in Paris."},
            {"role": "user", "content": "Thanks! Now add 2 and 3."},
        ],
        "tools": TOOLS,
        "add_generation_prompt": True,
    },
    # Two calls in one turn, with text beside them and a float argument; no
    # system message, and the conversation ends on the assistant's answer.
    "parallel_tools": {
        "messages": [
            {"role": "user", "content": "Weather in Paris and Tokyo, and 2 + 3.5?"},
            {"role": "assistant", "content": "Let me check.",
             "tool_calls": [{"id": "call00001", "type": "function",
                             "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                            {"id": "call00002", "type": "function",
                             "function": {"name": "add", "arguments": {"a": 2, "b": 3.5}}}]},
            {"role": "tool", "content": "Sunny, 22 °C", "tool_call_id": "call00001", "name": "get_weather"},
            {"role": "tool", "content": "5.5", "tool_call_id": "call00002", "name": "add"},
            {"role": "assistant", "content": "Paris: sunny, 22 °C. 2 + 3.5 = 5.5."},
        ],
        "tools": TOOLS,
        "add_generation_prompt": False,
    },
    # Text that templates trim, split and escape: surrounding whitespace, a
    # reasoning block before the answer, quotes, a backslash, non-ASCII.
    "untidy_text": {
        "messages": [
            {"role": "system", "content": "  Be brief.\n"},
            {"role": "user", "content": " Hi there\n\n"},
            {"role": "assistant", "content": "<think>\nThey greet me.\n</think>\n\nHello! \"Quoted\" \\ naïve 😀 "},
            {"role": "user", "content": "Again, with\ttabs?"},
        ],
        "tools": None,
        "add_generation_prompt": True,
    },
}


class AssistantTracker(jinja2.ext.Extension):
    """transformers' `{% generation %}` tag, without the tracking: renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return DATE.strftime(format)


class TemplateDict:
    def __call__(self, *args, **kwargs):
        return dict(*args, **kwargs)

    def fromkeys(self, *args, **kwargs):
        return dict.fromkeys(*args, **kwargs)


class TemplateNamespace(jinja2.utils.Namespace):
    def __init__(*args, **kwargs):
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name, value):
        TemplateNamespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name):
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(
                f"Chat templates cannot store underscore-prefixed attributes on a namespace, but got {name!r}. "
                "Please rename the attribute.")


def environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                       extensions=[AssistantTracker, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["dict"] = TemplateDict()
    env.globals["namespace"] = TemplateNamespace
    return env


def render(env, source, conversation):
    # apply_chat_template drops the keys whose value is None.
    messages = [{k: v for k, v in m.items() if v is not None} for m in conversation["messages"]]
    try:
        text = env.from_string(source).render(messages=messages, tools=conversation["tools"], documents=None,
                                              add_generation_prompt=conversation["add_generation_prompt"],
                                              bos_token=BOS, eos_token=EOS)
        return {"text": text}
    except Exception as e:  # what jinja2 raised is the expected outcome
        return {"error": f"{type(e).__name__}: {e}"}


def main():
    if jinja2.__version__ != "3.1.6":
        print(f"warning: made with Jinja2 3.1.6, this is {jinja2.__version__}", file=sys.stderr)
    names = sorted(f for f in os.listdir(templates_dir) if f.endswith(".jinja")) if os.path.isdir(templates_dir) else []
    if not names:
        sys.exit(f"no templates in {templates_dir}: run scripts/fetch-models.sh")
    env = environment()
    results = {}
    for name in names:
        source = open(os.path.join(templates_dir, name), encoding="utf-8").read()
        results[name] = {key: render(env, source, conv) for key, conv in CONVERSATIONS.items()}
        print(name, {key: "error" if "error" in r else len(r["text"]) for key, r in results[name].items()})
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "jinja2.json"), "w", encoding="utf-8") as f:
        json.dump({"made_by": f"scripts/reference/templates.py with Jinja2 {jinja2.__version__}",
                   "bos_token": BOS, "eos_token": EOS, "date": DATE.strftime("%Y-%m-%d"),
                   "conversations": CONVERSATIONS, "templates": results}, f, indent=1, ensure_ascii=False)
        f.write("\n")


main()
