/**
 * Toast notifications: a short message in the corner that goes away by itself. The agent's `notification`
 * events, command failures and "a backend started a run for you" all come through here.
 */

export type ToastLevel = "info" | "success" | "warning" | "error"

const LIFETIME_MS = 6_000

export const toast = (level: ToastLevel, title: string, message = ""): void => {
  const container = document.getElementById("toasts")
  if (!container) return
  const element = document.createElement("div")
  element.className = `toast toast-${level}`
  element.setAttribute("role", level === "error" ? "alert" : "status")
  const heading = document.createElement("strong")
  heading.textContent = title
  element.append(heading)
  if (message) {
    const body = document.createElement("span")
    body.textContent = message
    element.append(body)
  }
  container.append(element)
  setTimeout(() => {
    element.classList.add("toast-leaving")
    setTimeout(() => element.remove(), 300)
  }, LIFETIME_MS)
}
