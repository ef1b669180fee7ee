import type { NextAuthConfig } from "next-auth";

// The part of the auth configuration that the proxy can load: no database, no providers.
export const PUBLIC_PATHS = ["/login", "/setup"];

export const authConfig = {
  pages: { signIn: "/login" },
  session: { strategy: "jwt", maxAge: 12 * 60 * 60 },
  trustHost: true,
  callbacks: {
    authorized({ auth, request: { nextUrl } }) {
      if (PUBLIC_PATHS.some((p) => nextUrl.pathname === p || nextUrl.pathname.startsWith(`${p}/`))) return true;
      return Boolean(auth?.user);
    },
    jwt({ token, user }) {
      if (user?.id) {
        token.uid = user.id;
        token.role = (user as { role?: string }).role;
      }
      return token;
    },
    session({ session, token }) {
      if (session.user) {
        (session.user as { id?: string }).id = token.uid as string;
        (session.user as { role?: string }).role = token.role as string;
      }
      return session;
    },
  },
  providers: [],
} satisfies NextAuthConfig;
