"use client";

import { Button } from "@/components/ui/button";

/** Loads the page again from the server (a full reload: the layout itself may be what failed). */
export function TryAgain({ onClick }: { onClick?: () => void }) {
  return (
    <Button type="button" onClick={onClick ?? (() => window.location.reload())}>
      Try again
    </Button>
  );
}
