import { readSecretLine } from "./context";
import { UsageError } from "./output";

// Secrets never come from argv (which other users see in `ps`): from the environment variable an option
// names, else from a prompt without echo (a terminal) or the first line of standard input (a script).

export async function readSecret(flag: string, variable: string | undefined, prompt: string): Promise<string> {
  if (variable !== undefined) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable)) throw new UsageError(`${flag} takes the name of an environment variable (not the secret itself), like ${flag} CLOUDFLARE_TOKEN`);
    const value = process.env[variable];
    if (value === undefined) throw new UsageError(`${flag} ${variable}: the environment variable ${variable} is not set`);
    return value;
  }
  return readSecretLine(prompt);
}
