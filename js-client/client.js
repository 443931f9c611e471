// hunchensocket js-client: placeholder until the client lands (issue 4).
export const io = () => {
  throw new Error("the hunchensocket client is not built yet");
};
