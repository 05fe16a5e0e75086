"""Framework prompt templates the emulator answers in the shape the framework parses: the classic
LangChain ReAct prompt, JSON asked for in the prompt (no ``response_format``), refine and
condense-question prompts, conversation summaries. The agents themselves are exercised through the
real frameworks in tests/llama_index/test_li_frameworks.py and tests/langchain/test_lc_middleware.py."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from tests.emulator._helpers import chat

# LangChain's classic ReAct prompt (``hub.pull("hwchase17/react")``), tools rendered by
# ``render_text_description``.
CLASSIC_REACT = """Answer the following questions as best you can. You have access to the following tools:

get_weather(city: str) -> str - Get the current weather for a city.
multiply(a: int, b: int) -> int - Multiply two integers.

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, should be one of [get_weather, multiply]
Action Input: the input to the action
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can repeat N times)
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin!

Question: {question}
Thought:{scratchpad}"""

# langchain-classic's ``ReActSingleInputOutputParser`` patterns.
ACTION_RE = re.compile(r"Action\s*\d*\s*:[\s]*(.*?)[\s]*Action\s*\d*\s*Input\s*\d*\s*:[\s]*(.*)", re.DOTALL)
FINAL_RE = re.compile(r"Final Answer:\s*(.*)", re.DOTALL)


@pytest.fixture
def client(emulator):
    with emulator.client() as client:
        yield client


def _content(response):
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def test_classic_react_prompt_gets_an_action_then_a_final_answer(client):
    question = "What is the weather in Oslo?"
    first = _content(chat(client, CLASSIC_REACT.format(question=question, scratchpad=""), stop=["\nObservation"]))
    assert not first.startswith("Thought:"), "the prompt ends with 'Thought:': the answer continues it"
    action = ACTION_RE.search(first)
    assert action is not None and FINAL_RE.search(first) is None
    assert (action.group(1).strip(), action.group(2).strip()) == ("get_weather", "Oslo")

    scratchpad = f"{first}\nObservation: It is 21 degrees and sunny in Oslo.\nThought:"
    second = _content(chat(client, CLASSIC_REACT.format(question=question, scratchpad=scratchpad)))
    final = FINAL_RE.search(second)
    assert final is not None and ACTION_RE.search(second) is None
    assert "It is 21 degrees and sunny in Oslo." in final.group(1)


def test_classic_react_with_two_arguments_sends_json(client):
    content = _content(chat(client, CLASSIC_REACT.format(question="Multiply 6 and 7", scratchpad="")))
    action = ACTION_RE.search(content)
    assert action is not None and action.group(1).strip() == "multiply"
    assert json.loads(action.group(2)) == {"a": 6, "b": 7}


def test_react_prompt_without_a_fitting_tool_answers_directly(client):
    content = _content(chat(client, CLASSIC_REACT.format(question="Explain how tides work", scratchpad="")))
    assert ACTION_RE.search(content) is None
    assert "tides" in FINAL_RE.search(content).group(1).lower()


def test_a_schema_in_the_prompt_gets_a_valid_instance(client):
    # LangChain's ``PydanticOutputParser`` instructions show an example schema before the real one.
    schema = {
        "properties": {
            "name": {"title": "Name", "type": "string"},
            "age": {"title": "Age", "type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "age", "tags"],
        "type": "object",
    }
    prompt = (
        "The output should be formatted as a JSON instance that conforms to the JSON schema below.\n\n"
        'As an example, for the schema {"properties": {"foo": {"title": "Foo", "description": "a list of strings", '
        '"type": "array", "items": {"type": "string"}}}, "required": ["foo"]}\n'
        'the object {"foo": ["bar", "baz"]} is a well-formatted instance of the schema.\n\n'
        f"Here is the output schema:\n```\n{json.dumps(schema)}\n```\n"
        "'Ada' is 36 years old."
    )
    data = json.loads(_content(chat(client, prompt)))
    jsonschema.validate(data, schema)
    assert (data["name"], data["age"]) == ("Ada", 36)


def test_json_asked_for_in_words_is_json(client):
    data = json.loads(_content(chat(client, "Respond in JSON with keys city and country for Lisbon.")))
    assert set(data) == {"city", "country"}


def test_refine_prompt_keeps_or_rewrites_the_answer(client):
    template = (
        "You are an expert Q&A system that strictly operates in two modes when refining existing answers:\n"
        "New Context: {context}\nQuery: How many hills is Lisbon built on?\nOriginal Answer: {existing}\nNew Answer: "
    )
    lisbon = "The city of Lisbon is built on seven hills overlooking the Tagus river."
    unhelpful = "Otters hold hands while they sleep."
    assert _content(chat(client, template.format(context=unhelpful, existing=lisbon))) == lisbon
    assert _content(chat(client, template.format(context=lisbon, existing="I do not know."))) == lisbon


def test_condense_prompt_gets_the_standalone_question(client):
    prompt = (
        "Given the following conversation between a user and an AI assistant and a follow up question from user,\n"
        "rephrase the follow up question to be a standalone question.\n\nChat History:\nuser: Hi\nassistant: Hello!\n"
        "Follow Up Input: How many hills is Lisbon built on?\nStandalone question:"
    )
    assert _content(chat(client, prompt)) == "How many hills is Lisbon built on?"


def test_conversation_summary_fills_the_requested_sections(client):
    prompt = (
        "Extract the most relevant context from the conversation history below.\n\n## SESSION INTENT\n\n"
        "What is the user's goal?\n\n## SUMMARY\n\nThe important context.\n\n## NEXT STEPS\n\nWhat is left.\n\n"
        "<messages>\nMessages to summarize:\n"
        '<message type="human">My name is Ada and I am planning a trip to Lisbon. Any tips?</message>\n'
        '<message type="ai">Lisbon is hilly: bring good shoes.</message>\n'
        '<message type="human">What about trams?</message>\n</messages>'
    )
    summary = _content(chat(client, prompt))
    assert [line for line in summary.splitlines() if line.startswith("## ")] == [
        "## SESSION INTENT",
        "## SUMMARY",
        "## NEXT STEPS",
    ]
    assert "My name is Ada and I am planning a trip to Lisbon." in summary
    assert "What about trams?" in summary
