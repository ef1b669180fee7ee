import NextAuth, { CredentialsSignin } from "next-auth";
import Credentials from "next-auth/providers/credentials";
import { authConfig } from "./auth.config";
import { getDb } from "./lib/db";
import { signIn as verifySignIn } from "./lib/users";

class InvalidCredentials extends CredentialsSignin {
  code = "invalid";
}
class Throttled extends CredentialsSignin {
  constructor(retryAfterSeconds: number) {
    super();
    this.code = `throttled:${retryAfterSeconds}`;
  }
}

export const { auth, signIn, signOut, handlers } = NextAuth({
  ...authConfig,
  providers: [
    Credentials({
      credentials: { email: { label: "Email" }, password: { label: "Password", type: "password" } },
      async authorize(credentials, request) {
        const email = typeof credentials?.email === "string" ? credentials.email : "";
        const password = typeof credentials?.password === "string" ? credentials.password : "";
        if (!email || !password || password.length > 1000) throw new InvalidCredentials();
        // Set by server.ts from the socket; a client cannot supply it.
        const ip = request?.headers?.get("x-portcullis-client-ip") ?? "unknown";
        const result = await verifySignIn(getDb(), { email, password, ip });
        if (result.ok) return { id: result.user.id, email: result.user.email, role: result.user.role };
        if (result.reason === "throttled") throw new Throttled(result.retryAfterSeconds);
        throw new InvalidCredentials();
      },
    }),
  ],
});
