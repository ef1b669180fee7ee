import "server-only";
import { headers } from "next/headers";
import { redirect } from "next/navigation";
import { auth } from "@/auth";
import type { Actor } from "@/lib/audit";
import { getDb } from "@/lib/db";
import { AppError } from "@/lib/errors";
import { getUser, type UserView } from "@/lib/users";

/** The signed-in user, re-read from the database so that a removed user or changed role counts at once. */
export async function currentUser(): Promise<UserView | null> {
  const session = await auth();
  const id = (session?.user as { id?: string } | undefined)?.id;
  if (!id) return null;
  return (await getUser(getDb(), id)) ?? null;
}

export async function requirePageUser(): Promise<UserView> {
  const user = await currentUser();
  if (!user) redirect("/login");
  return user;
}

export async function clientIp(): Promise<string | null> {
  return (await headers()).get("x-portcullis-client-ip");
}

/** For server actions: a signed-in user with the role the action needs, as an audit actor. */
export async function requireActor(role: "admin" | "viewer"): Promise<Actor & { user: UserView }> {
  const user = await currentUser();
  if (!user) throw new AppError("unauthenticated", "your session has ended; sign in again");
  if (role === "admin" && user.role !== "admin") {
    throw new AppError("forbidden", "viewers have read-only access; ask an admin to do this");
  }
  return { id: user.id, label: user.email, role: user.role, ip: await clientIp(), user };
}
