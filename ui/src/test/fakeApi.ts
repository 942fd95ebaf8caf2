// A fake of the app's calls for component tests: records every call, answers from a
// table, and lets a test send events. (The real engine is exercised by the WebDriver
// tests in tests/tests/gui.rs.)
import type { Api, Commands, Events, Streams } from "../lib/api";
import type { Channel } from "../bindings/Channel";
import type { Command } from "../bindings/Command";

type Answers = { [C in Command]?: (args: Commands[C][0]) => Commands[C][1] | Promise<Commands[C][1]> };

export class FakeApi implements Api {
  calls: { command: Command; args: unknown }[] = [];
  answers: Answers;
  handlers: { [E in Channel]?: ((payload: Events[E]) => void)[] } = {};

  constructor(answers: Answers) {
    this.answers = answers;
  }

  async call<C extends Command>(command: C, args: Commands[C][0]): Promise<Commands[C][1]> {
    this.calls.push({ command, args });
    const answer = this.answers[command] as ((args: Commands[C][0]) => Commands[C][1]) | undefined;
    if (!answer) throw { code: "internal", message: `no answer for ${command}` };
    return answer(args);
  }

  async on<E extends Channel>(channel: E, handler: (payload: Events[E]) => void) {
    const list = (this.handlers[channel] ??= []) as ((payload: Events[E]) => void)[];
    list.push(handler);
    return () => {
      list.splice(list.indexOf(handler), 1);
    };
  }

  sinks: { [C in keyof Streams]?: (message: Streams[C]) => void } = {};

  async stream<C extends keyof Streams>(command: C, args: Omit<Commands[C][0], "sink">, onMessage: (message: Streams[C]) => void): Promise<number> {
    this.calls.push({ command, args });
    (this.sinks as Record<string, unknown>)[command] = onMessage;
    const answer = this.answers[command] as ((args: unknown) => number) | undefined;
    return answer ? answer(args) : 1;
  }

  /// Sends a message down a stream the component opened.
  push<C extends keyof Streams>(command: C, message: Streams[C]) {
    const sink = this.sinks[command] as ((message: Streams[C]) => void) | undefined;
    if (!sink) throw new Error(`${command} was not opened`);
    sink(message);
  }

  emit<E extends Channel>(channel: E, payload: Events[E]) {
    for (const h of (this.handlers[channel] ?? []) as ((payload: Events[E]) => void)[]) h(payload);
  }

  called(command: Command) {
    return this.calls.filter((c) => c.command === command);
  }
}

export const refusal = (code: string, message: string) => {
  throw { code, message };
};
