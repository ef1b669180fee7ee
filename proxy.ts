import NextAuth from "next-auth";
import { authConfig } from "./auth.config";

const { auth } = NextAuth(authConfig);

// Pages only: API handlers answer 401 themselves (a JSON error, not a redirect to /login), and so does
// /metrics (a plain-text 401/403 for Prometheus).
export { auth as proxy };

export const config = {
  matcher: ["/((?!api/|metrics$|_next/static|_next/image|favicon.ico|robots.txt).*)"],
};
