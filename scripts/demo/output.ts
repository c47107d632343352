/** The demo's terminal output: colours when a terminal, steps and check marks. */
import { relative } from "node:path";

// Output

export const tty = process.stdout.isTTY === true;
export const color = (code: string) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
export const green = color("32");
export const red = color("31");
export const bold = color("1");
export const dim = color("2");

export function say(line = ""): void {
  process.stdout.write(`${line}\n`);
}
export function step(title: string): void {
  say();
  say(bold(`== ${title}`));
}
export function okLine(msg: string): void {
  say(`${green("✓")} ${msg}`);
}
export function rel(path: string): string {
  const r = relative(process.cwd(), path);
  return r.startsWith("..") ? path : r || ".";
}
