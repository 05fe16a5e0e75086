"""``Cerebras`` over real HTTP against the emulator: the eight chat/complete methods, usage and
call metadata, reasoning as a ``ThinkingBlock`` that goes back as ``reasoning``."""

from __future__ import annotations

import itertools
import subprocess
import sys
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole, TextBlock, ThinkingBlock
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent, LLMChatStartEvent

from tests.llama_index.helpers import (
    COMPLETE_PATHS,
    PATHS,
    Recorder,
    llm_for,
    recorded_llm,
    run_chat,
    run_complete,
)


def _user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


@pytest.mark.parametrize("path", PATHS)
async def test_chat_paths_return_text_usage_and_call_info(emulator: Any, path: str) -> None:
    llm = llm_for(emulator)
    response = await run_chat(llm, path, _user("Say hi in Portuguese"))
    assert response.message.role == MessageRole.ASSISTANT
    assert response.message.content == "Olá!"
    extra = response.additional_kwargs
    assert extra["prompt_tokens"] > 0 and extra["completion_tokens"] > 0
    assert extra["total_tokens"] == extra["prompt_tokens"] + extra["completion_tokens"]
    assert extra["cost_usd"] > 0
    assert extra["rate_limits"]["limit"]["tokens-minute"] > 0
    assert extra["attempts"] == 1 and extra["tier"] == "paygo"
    assert extra["finish_reason"] == "stop"
    assert extra["model"] == "gpt-oss-120b"
    assert isinstance(response.raw, dict) and response.raw["usage"]["total_tokens"] == extra["total_tokens"]
    assert emulator.stats()["statuses"] == {"200": 1}


@pytest.mark.parametrize("path", COMPLETE_PATHS)
async def test_complete_paths_go_through_chat(emulator: Any, path: str) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder)
    response = await run_complete(llm, path, "Say hi in Spanish")
    assert response.text == "¡Hola!"
    assert response.additional_kwargs["total_tokens"] > 0
    assert response.additional_kwargs["cost_usd"] > 0
    assert response.additional_kwargs["reasoning_content"], "reasoning reaches completions too"
    assert recorder.bodies[-1]["messages"] == [{"role": "user", "content": "Say hi in Spanish"}]
    stream = path.startswith(("stream", "astream"))
    assert recorder.bodies[-1].get("stream", False) is stream
    if stream:
        assert recorder.bodies[-1]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("path", PATHS)
async def test_reasoning_is_a_thinking_block_and_goes_back_as_reasoning(emulator: Any, path: str) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder, reasoning_effort="medium")
    first = await run_chat(llm, path, _user("Why is the sky blue?"))
    message = first.message
    thinking = [block for block in message.blocks if isinstance(block, ThinkingBlock)]
    assert len(thinking) == 1 and thinking[0].content
    reasoning = thinking[0].content
    assert message.additional_kwargs["reasoning_content"] == reasoning
    assert thinking[0].num_tokens == first.additional_kwargs["reasoning_tokens"] > 0
    assert isinstance(message.blocks[1], TextBlock) and message.content
    assert recorder.bodies[0]["reasoning_effort"] == "medium"

    second = await run_chat(llm, path, [*_user("Why is the sky blue?"), message, *_user("And at sunset?")])
    assert second.message.content
    assistant = recorder.bodies[-1]["messages"][1]
    assert assistant == {"role": "assistant", "content": message.content, "reasoning": reasoning}


async def test_reasoning_effort_none_is_sent_and_turns_reasoning_off(emulator: Any) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder, model="zai-glm-4.7", reasoning_effort="none")
    response = await llm.achat(_user("Why is the sky blue?"))
    assert recorder.bodies[0]["reasoning_effort"] == "none"
    assert not any(isinstance(block, ThinkingBlock) for block in response.message.blocks)
    assert "reasoning_content" not in response.message.additional_kwargs


def test_streamed_deltas_add_up_and_thinking_deltas_are_reported(emulator: Any) -> None:
    llm = llm_for(emulator, reasoning_effort="low")
    responses = list(llm.stream_chat(_user("Tell me about otters")))
    assert len(responses) > 2
    thinking = "".join(r.additional_kwargs.get("thinking_delta", "") for r in responses)
    assert thinking == responses[-1].message.additional_kwargs["reasoning_content"]
    for earlier, later in itertools.pairwise(responses):
        assert later.message.content.startswith(earlier.message.content or "")


async def test_call_kwargs_override_instance_fields(emulator: Any) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder, temperature=0.2, additional_kwargs={"top_p": 0.5, "seed": 7})
    await llm.achat(_user("hello"), max_tokens=32, temperature=0.9, stop=["zzz"])
    body = recorder.bodies[0]
    assert body["max_completion_tokens"] == 32 and "max_tokens" not in body
    assert body["temperature"] == 0.9 and body["top_p"] == 0.5 and body["seed"] == 7
    assert body["stop"] == ["zzz"]
    assert body["model"] == "gpt-oss-120b"


def test_system_and_tool_roles_and_developer_go_out_as_given(emulator: Any) -> None:
    recorder = Recorder()
    llm = recorded_llm(emulator, recorder)
    llm.chat(
        [
            ChatMessage(role=MessageRole.SYSTEM, content="Be brief."),
            ChatMessage(role=MessageRole.DEVELOPER, content="No emojis."),
            ChatMessage(role=MessageRole.USER, content="hello"),
        ]
    )
    assert [m["role"] for m in recorder.bodies[0]["messages"]] == ["system", "developer", "user"]


class _Events(BaseEventHandler):
    """Collects instrumentation events."""

    events: list[BaseEvent] = []

    @classmethod
    def class_name(cls) -> str:
        return "_Events"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


async def test_callbacks_and_instrumentation_fire_and_carry_no_key(emulator: Any) -> None:
    handler = _Events(events=[])
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(handler)
    try:
        llm = llm_for(emulator)
        llm.chat(_user("hello"))
        [r async for r in await llm.astream_chat(_user("hello"))]
        llm.complete("hello")
    finally:
        dispatcher.event_handlers.remove(handler)
    kinds = [type(event).__name__ for event in handler.events]
    assert kinds.count("LLMChatStartEvent") == 2 and kinds.count("LLMChatEndEvent") == 2
    assert kinds.count("LLMChatInProgressEvent") > 1
    assert kinds.count("LLMCompletionStartEvent") == 1 and kinds.count("LLMCompletionEndEvent") == 1
    ends = [event for event in handler.events if isinstance(event, LLMChatEndEvent)]
    assert all(end.response is not None and end.response.additional_kwargs["total_tokens"] > 0 for end in ends)
    key = llm.api_key.get_secret_value() if llm.api_key else ""
    starts = [event for event in handler.events if isinstance(event, LLMChatStartEvent)]
    assert starts[0].model_dict["context_window"] == 131072
    assert key and all(key not in repr(event) for event in handler.events)


def test_the_package_needs_neither_langchain_nor_openai() -> None:
    code = (
        "import sys, llama_index_cerebras; "
        "names = {m.split('.')[0] for m in sys.modules}; "
        "bad = sorted(names & {'langchain_core', 'langchain_cerebras_paygo', 'openai'}); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
