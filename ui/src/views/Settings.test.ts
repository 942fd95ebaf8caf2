import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import Settings from "./Settings.svelte";
import { FakeApi, refusal } from "../test/fakeApi";
import type { SettingsForm } from "../bindings/SettingsForm";

const form: SettingsForm = { cpus: "1", memory_mib: "1024", disk_gib: "64", shares: ["/home/me", "/tmp"], insecure_registries: [], registry_mirrors: [], dns_upstream: [] };
const ready = { state: "ready" as const, accel: "tcg", engine: { engine_version: "0.1.0", api_version: "1.43", kernel_version: "6.1.0-28", os: "linux", arch: "amd64" } };

describe("Settings", () => {
  it("shows the engine and saves the form, saying a restart applies it", async () => {
    const fake = new FakeApi({ read_settings: () => form, apply_settings: () => ["cpus", "shares"] });
    render(Settings, { api: fake, vm: ready });
    expect(screen.getByText("6.1.0-28")).toBeTruthy();
    const cpus = await screen.findByLabelText("CPUs");
    await fireEvent.input(cpus, { target: { value: "4" } });
    await fireEvent.input(screen.getByLabelText("Shared folders (one per line)"), { target: { value: "/home/me\n/srv/code" } });
    await fireEvent.click(screen.getByRole("button", { name: "Apply" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("Saved: cpus, shares. Restart the VM"));
    expect(fake.called("apply_settings")[0].args).toEqual({ form: { ...form, cpus: "4", shares: ["/home/me", "/srv/code"] } });
  });

  it("shows a refused value in the CLI's words", async () => {
    const fake = new FakeApi({ read_settings: () => form, apply_settings: () => refusal("invalid_argument", "invalid value for memory-mib: want at least 256") });
    render(Settings, { api: fake, vm: { state: "stopped" } });
    await fireEvent.click(await screen.findByRole("button", { name: "Apply" }));
    expect((await screen.findByRole("alert")).textContent).toBe("invalid_argument: invalid value for memory-mib: want at least 256");
  });

  it("logs in to a registry and forgets the password field", async () => {
    const fake = new FakeApi({ read_settings: () => form, registry_login: () => "Login Succeeded" });
    render(Settings, { api: fake, vm: ready });
    await fireEvent.input(screen.getByLabelText("Registry"), { target: { value: "registry.local:5000" } });
    await fireEvent.input(screen.getByLabelText("User"), { target: { value: "me" } });
    await fireEvent.input(screen.getByLabelText("Password"), { target: { value: "s3cret" } });
    await fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toBe("Login Succeeded"));
    expect(fake.called("registry_login")[0].args).toEqual({ registry: "registry.local:5000", username: "me", password: "s3cret" });
    expect((screen.getByLabelText("Password") as HTMLInputElement).value).toBe("");
  });

  it("resets the VM only after a second, explicit click", async () => {
    const fake = new FakeApi({ read_settings: () => form, reset_vm: () => true, write_diagnostics: () => "/home/me/.berth/diagnostics/d.tar.gz" });
    render(Settings, { api: fake, vm: { state: "stopped" } });
    await fireEvent.click(screen.getByRole("button", { name: "Write diagnostics" }));
    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("/home/me/.berth/diagnostics/d.tar.gz"));
    await fireEvent.click(screen.getByRole("button", { name: "Reset the VM…" }));
    expect(fake.called("reset_vm")).toHaveLength(0);
    await fireEvent.click(screen.getByRole("button", { name: "Delete everything" }));
    expect(fake.called("reset_vm")).toHaveLength(1);
  });
});
